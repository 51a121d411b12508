"""The words an attack may touch, located in the original text so that a substitution
changes that word and nothing else (spacing and punctuation are kept byte for byte)."""

from __future__ import annotations

import re
from dataclasses import dataclass

# NLTK's English stopwords plus the negations, quantifiers and modals that decide an NLI
# label on their own ("never", "every", "might"): TextFooler never replaces its stopwords,
# and replacing a negation would change the meaning, not attack the model. Written out here
# because nltk's list is a download.
STOPWORDS = frozenset(["a", "about", "above", "after", "again", "against", "ain", "all", "almost", "also", "although", "always", "am", "among", "an", "and", "another", "any", "anybody", "anyone", "anything", "anywhere", "are", "aren", "as", "at", "be", "became", "because", "become", "been", "before", "being", "below", "beside", "besides", "between", "beyond", "both", "but", "by", "can", "cannot", "could", "couldn", "d", "did", "didn", "do", "does", "doesn", "doing", "don", "down", "during", "each", "either", "else", "elsewhere", "enough", "ever", "every", "everybody", "everyone", "everything", "everywhere", "few", "for", "from", "further", "had", "hadn", "has", "hasn", "have", "haven", "having", "he", "her", "here", "hers", "herself", "him", "himself", "his", "how", "however", "i", "if", "in", "into", "is", "isn", "it", "its", "itself", "just", "least", "less", "ll", "m", "ma", "many", "may", "me", "might", "mightn", "more", "most", "much", "must", "mustn", "my", "myself", "neither", "needn", "never", "no", "nobody", "none", "noone", "nor", "not", "nothing", "now", "nowhere", "o", "of", "off", "often", "on", "once", "one", "only", "or", "other", "others", "otherwise", "our", "ours", "ourselves", "out", "over", "own", "per", "perhaps", "rather", "re", "s", "same", "seldom", "several", "shall", "shan", "she", "should", "shouldn", "since", "so", "some", "somebody", "someone", "something", "sometimes", "somewhere", "such", "t", "than", "that", "the", "their", "theirs", "them", "themselves", "then", "there", "therefore", "these", "they", "this", "those", "though", "through", "thus", "to", "too", "under", "unless", "until", "up", "upon", "us", "ve", "very", "was", "wasn", "we", "were", "weren", "what", "whatever", "when", "whenever", "where", "wherever", "whether", "which", "while", "who", "whoever", "whole", "whom", "whose", "why", "will", "with", "within", "without", "won", "would", "wouldn", "y", "yet", "you", "your", "yours", "yourself", "yourselves"])

_WORD = re.compile(r"[A-Za-z]+(?:'[A-Za-z]+)?")


@dataclass(frozen=True)
class Words:
    """A text's words as character spans; `replace` and `delete` return new texts."""

    text: str
    spans: tuple[tuple[int, int], ...]

    @classmethod
    def of(cls, text: str) -> Words:
        return cls(text, tuple(m.span() for m in _WORD.finditer(text)))

    def __len__(self) -> int:
        return len(self.spans)

    def word(self, i: int) -> str:
        start, end = self.spans[i]
        return self.text[start:end]

    def replace(self, changes: dict[int, str]) -> str:
        """The text with word i replaced by changes[i], the case of its first letter kept."""
        out, last = [], 0
        for i in sorted(changes):
            start, end = self.spans[i]
            new = changes[i]
            if self.text[start].isupper():
                new = new[:1].upper() + new[1:]
            out += [self.text[last:start], new]
            last = end
        return "".join(out) + self.text[last:]

    def delete(self, i: int) -> str:
        """The text without word i and the space after it (TextFooler's leave-one-out)."""
        start, end = self.spans[i]
        while end < len(self.text) and self.text[end] == " ":
            end += 1
        return self.text[:start] + self.text[end:]

    def replaceable(self, i: int) -> bool:
        """Only plain alphabetic words outside the stopword list: a contraction ("don't") or
        a stopword carries grammar or the label, not content an attacker may swap."""
        word = self.word(i)
        return word.isalpha() and word.lower() not in STOPWORDS
