"""Index a few texts and search them with a filter, fully offline."""

from ragmem import HashingEmbedder, LocalVectorStore

texts = {
    "solar": ("Solar panels turn sunlight into electricity.", {"topic": "energy", "year": 2021}),
    "wind": ("Wind turbines convert wind into electric power.", {"topic": "energy", "year": 2024}),
    "bread": ("Sourdough bread rises with wild yeast.", {"topic": "food", "year": 2023}),
    "tea": ("Green tea is steamed to stop oxidation.", {"topic": "food", "year": 2024}),
}

embedder = HashingEmbedder(dimensions=256)
store = LocalVectorStore(dimensions=embedder.dimensions)
ids = list(texts)
store.upsert(
    ids,
    embedder.embed([texts[i][0] for i in ids]),
    texts=[texts[i][0] for i in ids],
    metadata=[texts[i][1] for i in ids],
)

query = "how is electric power made from wind"
for hit in store.search(embedder.embed_query(query), k=2, where={"year": {"$gte": 2022}})[0]:
    print(f"{hit.score:.3f}  {hit.id:6}  {hit.text}")
