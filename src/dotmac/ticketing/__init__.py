"""dotmac-ticketing: a multi-tenant, event-sourced support-ticketing service."""
