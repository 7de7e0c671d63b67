// Shared services (PostgreSQL, Redis) for tests: in CI a missing one fails the test run, elsewhere
// its tests are skipped with a warning that says so.
import * as net from "node:net"

/** Whether something accepts TCP connections at the URL's host and port (1 s timeout). @param {string} url */
export const reachable = (url) =>
  new Promise((resolve) => {
    const u = new URL(url)
    const socket = net.connect({ host: u.hostname, port: Number(u.port) })
    socket.setTimeout(1000)
    /** @param {boolean} up */
    const done = (up) => {
      socket.destroy()
      resolve(up)
    }
    socket.once("connect", () => done(true))
    socket.once("error", () => done(false))
    socket.once("timeout", () => done(false))
  })

/**
 * Whether the shared service answers. In CI (`CI` set) a missing service is an error, never a skip.
 * @param {string} name @param {string} url @returns {Promise<boolean>}
 */
export const service = async (name, url) => {
  if (await reachable(url)) return true
  if (process.env.CI) throw new Error(`${name} at ${url} is required in CI but unreachable`)
  console.warn(`skipping ${name} tests: ${url} unreachable (set CI to make this an error)`)
  return false
}
