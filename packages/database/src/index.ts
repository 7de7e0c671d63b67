/**
 * Node state store: SQLite (embedded), PostgreSQL or Redis behind one typed repository API, with checksummed versioned migrations.
 *
 * @packageDocumentation
 */
export {}
