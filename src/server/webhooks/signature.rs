//! Standard Webhooks signature verification (being written).
