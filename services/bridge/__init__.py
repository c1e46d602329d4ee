"""The bridge (宝嘉常昆太): signed, store-and-forward event exchange between the five cities."""
