"""What requests that want words, not a tool, look like: the other side of tool selection.

A tool's description and examples say what it computes; a request scores against them by
the words it shares ("sentence" with text.stats, "email" and "day off" with calendar.book).
Whether a request wants a tool depends on what it asks for, so the selector also scores the
request against these examples of conversation, writing and general questions: a request
closer to them than to any tool (by the selector's margin) is answered in plain text.
"""

from __future__ import annotations

CONVERSATION_EXAMPLES: tuple[str, ...] = (
    # small talk
    "hello there",
    "hey, how's it going?",
    "good evening",
    "thank you so much",
    "see you later",
    "who are you?",
    "what are you able to help with?",
    "I feel tired today",
    "tell me a funny joke",
    "say something nice",
    "greet me in one sentence",
    "tell me something I don't know",
    # writing
    "write a poem about the moon",
    "write a short story about a robot",
    "write a sentence about the ocean",
    "compose a short song about summer",
    "write an email to my boss asking for a meeting",
    "draft a letter of apology to a neighbour",
    "write a birthday card message for a friend",
    "write a motivational quote",
    "come up with a name for a coffee shop",
    "suggest a title for my essay about climate",
    "give me three ideas for a party theme",
    "describe a forest at night",
    "rewrite this sentence to sound more formal",
    "make this paragraph shorter",
    "summarize this text in two sentences",
    "translate thank you into Spanish",
    "correct the grammar in this sentence",
    "give me a word that means big",
    # general questions
    "what is the capital of Japan?",
    "who discovered penicillin?",
    "why do leaves change colour in autumn?",
    "how does a rainbow form?",
    "explain how vaccines work",
    "what is an atom?",
    "name the planets of the solar system",
    "list three kinds of fruit",
    "what do bees eat?",
    "at what speed does sound travel?",
    "give me advice on sleeping better",
    "what should I cook for dinner?",
)
