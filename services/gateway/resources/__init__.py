"""HTTP resources of the gateway, one mixin per resource (leads, cases, ...). Each declares its
operations with `services.gateway.api.operation` and the RPC clients it needs; `GatewayService`
inherits them all (nameko collects inherited entrypoints and dependencies)."""
