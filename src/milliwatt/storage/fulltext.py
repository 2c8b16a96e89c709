"""Full-text ranking in PostgreSQL the way SQLite's FTS5 ranks: BM25 (k1 1.2, b 0.75, FTS5's
IDF), so either backend puts the same passages and facts first.

PostgreSQL's own ts_rank has no IDF and saturates: a chunk holding two of the three words
asked for can score the same as one holding all three. Here the GIN index finds every row
holding any query word; their term frequencies and lengths come from the tsvector itself,
each word's document frequency is counted among those rows (exactly those that hold it),
and the row count and mean length come from the caller's `stats` query.
"""

from __future__ import annotations

from psycopg import sql

CONFIG = "milliwatt_english"  # the text search configuration of migrations.FACTS
K1, B = 1.2, 0.75  # FTS5's constants


def any_word(count: int) -> sql.Composed:
    """A tsquery matching any of `count` words given as %(w0)s, %(w1)s, ...: one
    plainto_tsquery per word, OR-ed, so a word's punctuation is never query syntax."""
    each = [
        sql.SQL("plainto_tsquery({config}, {word})").format(
            config=sql.Literal(CONFIG), word=sql.Placeholder(f"w{i}")
        )
        for i in range(count)
    ]
    return sql.SQL(" || ").join(each)


def bm25_ranked(words: int, candidates: sql.Composable, stats: sql.Composable) -> sql.Composed:
    """Row ids, best first, at most %(limit)s. `candidates` selects (id, words, tokens) of the rows
    in scope whose `words @@ q.query` (q is in scope); `stats` selects (rows, mean tokens)
    of all rows in scope. Parameters: w0..w(words-1), query_text (the words joined), limit, and
    those of the two fragments (by name: %(name)s)."""
    return sql.SQL(
        """
        WITH q AS (SELECT {any_word} AS query),
        matched AS ({candidates}),
        asked AS (
            SELECT unnest(tsvector_to_array(to_tsvector({config}, %(query_text)s))) AS lexeme
        ),
        terms AS (
            SELECT m.id, t.lexeme, array_length(t.positions, 1) AS tf, m.tokens AS dl
            FROM matched m, unnest(m.words) t
            WHERE t.lexeme IN (SELECT lexeme FROM asked)
        ),
        df AS (SELECT lexeme, count(*) AS hits FROM terms GROUP BY lexeme),
        stats AS ({stats})
        SELECT terms.id
        FROM terms JOIN df USING (lexeme), stats
        GROUP BY terms.id
        ORDER BY sum(
            greatest(ln((stats.n - df.hits + 0.5) / (df.hits + 0.5)), 1e-6)
            * terms.tf * {k1_plus_1}
            / (terms.tf + {k1} * (1 - {b} + {b} * terms.dl / greatest(stats.avgdl, 1)))
        ) DESC, terms.id
        LIMIT %(limit)s
        """
    ).format(
        any_word=any_word(words),
        candidates=candidates,
        stats=stats,
        config=sql.Literal(CONFIG),
        k1_plus_1=sql.Literal(K1 + 1),
        k1=sql.Literal(K1),
        b=sql.Literal(B),
    )
