/**
 * systemd integration for the NovaCron agent.
 *
 * @packageDocumentation
 */

/**
 * sd_notify: READY, STOPPING and the watchdog over `NOTIFY_SOCKET`.
 *
 * @since 0.1.0
 */
export * as SdNotify from "./SdNotify.js"
