"""The service toolkit every Liandong service stands on (config, logging, database unit of work,
outbox, inbox, reliable event handlers, topology, health and metrics)."""
