"""A small pure-Python package, bundled into a task with --python-path."""

from collections import Counter


def top_words(text: str, count: int) -> list[list]:
    """The `count` most frequent words of `text`, lowercased, with how often
    each occurs."""
    words = Counter(word.strip(".,;:!?\"'()").lower() for word in text.split())
    words.pop("", None)
    return [[word, times] for word, times in words.most_common(count)]
