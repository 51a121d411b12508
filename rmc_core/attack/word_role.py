"""Whether a substitute keeps the word's grammatical role: its part of speech and its
inflection (TextFooler's POS constraint, without a tagger in context).

Embedding neighbours mix a word's synonyms with its relatives of another class or number
(painter -> paint, teacher -> teaching, pilot -> pilots): each such swap changes what the
sentence says, not how it says it, and an attack that counts it as a success measures its
candidate list. With no tagger that runs offline, the check reads a lexicon (lemminflect's):
a word's possible parts of speech and the Penn tags whose preferred form it is. A substitute
is kept when it can be no part of speech the word cannot be, and shares one of those tags:
doctor -> physician is kept (both NN), painter -> paint is not (paint is also a verb),
pilot -> pilots and day -> days are not (NN against NNS). Preferred forms only: the lexicon
also lists "day" among the plurals of day (a rare uncountable use), and with every listed
form the MNLI attack kept day -> days, radio -> radios and identity -> identities. A word
the lexicon does not know (a name) gets no substitutes: its role cannot be checked.
"""

from __future__ import annotations

from functools import cache


@cache
def analyses(word: str) -> tuple[frozenset[str], frozenset[str]]:
    """The word's possible parts of speech (UPOS) and the Penn tags whose preferred form it is
    (the lexicon lists a tag's forms most usual first)."""
    from lemminflect import getAllInflections, getAllLemmas

    lemmas = getAllLemmas(word)
    tags = {tag for pos, found in lemmas.items() for lemma in found
            for tag, forms in getAllInflections(lemma, upos=pos).items() if forms[:1] == (word,)}
    return frozenset(lemmas), frozenset(tags)


def keeps_role(word: str, substitute: str) -> bool:
    """The substitute is no part of speech the word cannot be, and shares one of its tags."""
    word_pos, word_tags = analyses(word.lower())
    sub_pos, sub_tags = analyses(substitute.lower())
    return bool(word_pos) and bool(sub_pos) and sub_pos <= word_pos and bool(word_tags & sub_tags)
