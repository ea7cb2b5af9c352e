"""The 1C standard OData connector: client, `$metadata`, mapping rules, sync tasks (see docs/connect-1c-odata.md)."""
