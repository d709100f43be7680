//! Label sets: sorted, validated name/value pairs.
