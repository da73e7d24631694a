"""A chat log told to memory: the user's own words outrank assistant replies that only
talk around them (long, on a nearby topic, and so close in MaxSim and dense similarity)."""

import pytest

from ragmem.agents import Memory, MemoryInput
from ragmem.agents.recall import RecallWeights
from ragmem.errors import ConfigurationError

FACT = "I just bought a portable power bank and a wireless charging pad for my trips."
# (the user's opening turn, the assistant's long reply) of three unrelated sessions
SESSIONS = {
    "time": (
        "I'm struggling with time management lately; I have too many projects going on.",
        "Time management is a challenge many people face, and there are plenty of practical "
        "tips that can help. Start by listing everything you need to do each week, then sort "
        "the list by urgency and importance so that the tasks that really matter get done "
        "first. Block out time on your calendar for focused work, and protect those blocks "
        "the way you would protect a meeting with someone else. Break large projects into "
        "small steps with their own deadlines, because a small step is easier to start than a "
        "vague goal. Batch similar tasks together, such as answering messages or running "
        "errands, so that you switch context less often. Learn to say no to requests that do "
        "not fit your priorities, and delegate what others can do. Review your week every "
        "Friday to see what worked, what slipped, and what you want to change. Finally, leave "
        "some slack in your schedule, since unexpected things always come up, and rest is "
        "part of staying productive over the long term.",
    ),
    "recipes": (
        "I've been trying out some new recipes lately and want to get better at it.",
        "Experimenting with recipes is a great way to learn, and a few habits make it much "
        "easier. Keep a notebook or a notes app where you write down each change you make, "
        "such as the amount of salt, the oven temperature, or the cooking time, so you can "
        "repeat what worked. Change one thing at a time, otherwise you will not know which "
        "change made the difference. Taste as you go and adjust the seasoning at the end, "
        "since flavours concentrate while a dish cooks. Prepare all your ingredients before "
        "you start, which keeps the process calm and prevents mistakes. When you try a new "
        "technique, practise it on a small batch first. Invite friends to taste your "
        "experiments and ask them for honest feedback about texture and flavour. Over a few "
        "weeks you will build a collection of reliable recipes that you can adapt to the "
        "season and to whatever you have in the fridge, and cooking will feel more creative "
        "and less stressful.",
    ),
    "flights": (
        "I've been flying a lot lately and I'm losing track of my trips.",
        "Keeping track of frequent trips can feel overwhelming, but a simple system helps a "
        "lot. Create a spreadsheet with one row per trip, listing the dates, the airline, the "
        "flight numbers, the cost, and the purpose of the journey, and update it as soon as "
        "you book. Save every confirmation email in a dedicated folder so you can find it "
        "quickly at the airport. Many airlines and travel apps let you export your history, "
        "which saves typing. If you travel for work, note which expenses are reimbursable and "
        "keep the receipts together. Review your loyalty accounts every few months to make "
        "sure all your miles were credited, since missing flights are common. Set calendar "
        "reminders for check-in times and for visa or passport renewals well before they are "
        "due. Over time the record will show patterns in your travel, such as the routes you "
        "fly most, which helps you pick better fares and plan your trips with less stress.",
    ),
}


QUERY = "I've been having trouble keeping my phone charged lately. Any tips?"


def _ranked(weights: RecallWeights) -> list[str]:
    from ragmem.embedders.local import LocalEmbedder

    memory = Memory(embedder=LocalEmbedder(), weights=weights, deduplicate=False, same_subject=None)
    inputs = []
    stamp = 1_700_000_000.0
    for topic, (opening, reply) in SESSIONS.items():
        for role, text in (("user", opening), ("assistant", reply)):
            meta = {"role": role}
            inputs.append(MemoryInput(text=text, session_id=topic, timestamp=stamp, metadata=meta))
            stamp += 1
    inputs.append(
        MemoryInput(text=FACT, session_id="gear", timestamp=stamp, metadata={"role": "user"})
    )
    inputs.append(
        MemoryInput(
            text="Great choices! A power bank keeps you going when there is no outlet nearby.",
            session_id="gear",
            timestamp=stamp + 1,
            metadata={"role": "assistant"},
        )
    )
    memory.add_many(inputs, user_id="ana")
    return [str(h.text) for h in memory.search(QUERY, user_id="ana", k=10)]


def test_the_users_fact_outranks_long_replies_on_other_topics():
    pytest.importorskip("onnxruntime")
    texts = _ranked(RecallWeights())
    assert texts.index(FACT) < min(texts.index(reply) for _, reply in SESSIONS.values())


def test_speakers_alike_when_asked():
    pytest.importorskip("onnxruntime")
    # treated alike, some long reply outranks the fact: the default is what puts it first
    texts = _ranked(RecallWeights(assistant=1.0))
    assert texts.index(FACT) > min(texts.index(reply) for _, reply in SESSIONS.values())


@pytest.mark.parametrize(
    "bad",
    [{"assistant": -0.1}, {"assistant": 1.5}, {"dense": float("nan")}, {"depth": True}],
)
def test_weights_out_of_range_are_refused(bad):
    with pytest.raises(ConfigurationError):
        RecallWeights(**bad)
