/**
 * JSON-lines Effect logger for NovaCron: pretty on a TTY, optional size-rotated file under data_dir.
 *
 * @packageDocumentation
 */
export {}
