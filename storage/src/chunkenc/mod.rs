//! Gorilla XOR chunk encoding, bit-exact with Prometheus `tsdb/chunkenc`.
