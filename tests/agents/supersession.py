"""A synthetic supersession suite: pairs of an older and a newer statement on one subject.

Each subject has an old phrasing, a new phrasing (often naming the old value too, as
people do: "I moved from Paris to Berlin") and the question that asks for the current
value. Distractors are unrelated facts of the same user.
"""

from __future__ import annotations

SUBJECTS = [
    (
        ["Paris", "Berlin", "Lisbon", "Oslo", "Rome", "Porto", "Madrid", "Vienna"],
        "I live in {old}",
        ["I moved from {old} to {new}", "These days I live in {new}"],
        "Where do I live?",
    ),
    (
        ["sushi", "ramen", "pizza", "tacos", "curry", "paella", "falafel", "dumplings"],
        "I love eating {old}",
        ["I no longer like {old}, I like {new} now", "My favourite food is {new} these days"],
        "What food do I like?",
    ),
    (
        ["nurse", "teacher", "pilot", "chef", "lawyer", "baker", "plumber", "designer"],
        "I work as a {old}",
        ["I changed jobs: I am a {new} now", "I quit being a {old} and became a {new}"],
        "What is my job?",
    ),
    (
        ["Volvo", "Fiat", "Tesla", "Honda", "Skoda", "Mazda", "Renault", "Toyota"],
        "I drive a {old}",
        ["I sold my {old} and bought a {new}", "My car is a {new} now"],
        "What car do I drive?",
    ),
    (
        ["cat", "dog", "parrot", "rabbit", "hamster", "turtle", "goldfish", "ferret"],
        "I have a pet {old}",
        ["Sadly my {old} died; now I have a {new}", "We adopted a {new} last month"],
        "What pet do I have?",
    ),
    (
        ["chess", "tennis", "painting", "climbing", "cycling", "knitting", "surfing", "yoga"],
        "My favourite hobby is {old}",
        ["I gave up {old}; my hobby is {new} now", "These days I spend my free time on {new}"],
        "What is my hobby?",
    ),
    (
        ["Arsenal", "Benfica", "Ajax", "Celtic", "Napoli", "Porto FC", "Sevilla", "Lyon"],
        "My favourite football team is {old}",
        ["I support {new} now instead of {old}", "I became a {new} fan this year"],
        "Which football team do I support?",
    ),
]

DISTRACTORS = [
    "My sister is called Maria",
    "I am allergic to peanuts",
    "I play the guitar on weekends",
    "My birthday is in March",
]


def pairs() -> list[tuple[str, str, str]]:
    """(older statement, newer statement, question) for every subject, value and phrasing."""
    out = []
    for values, old_text, new_texts, question in SUBJECTS:
        for n, old in enumerate(values):
            new = values[(n + 1) % len(values)]
            for new_text in new_texts:
                out.append((old_text.format(old=old), new_text.format(old=old, new=new), question))
    return out
