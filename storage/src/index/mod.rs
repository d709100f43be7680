//! Index format v2: symbols, series, label indices, postings, postings offset table, TOC.
