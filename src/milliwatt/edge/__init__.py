"""The inference edge: where points of presence go, and how far users are from them."""
