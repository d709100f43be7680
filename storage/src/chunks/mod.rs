//! Chunk segment files (`chunks/000001`) for blocks and `chunks_head/` for the head.
