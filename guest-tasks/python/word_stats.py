"""A task that uses a package from outside the standard library:

    wasmpool run guest-tasks/python/word_stats.py \
        --python-path guest-tasks/python/vendor --inputs '[["a b a", 1]]'

`textstats` lives in guest-tasks/python/vendor; --python-path bundles it.
"""

from textstats import top_words
from wasmpool_task import task


@task
def word_stats(text: str, count: int) -> list:
    return top_words(text, count)
