//! Label matchers `=`, `!=`, `=~`, `!~` with Prometheus semantics.
