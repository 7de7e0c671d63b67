#!/usr/bin/env node
// Numbered, timestamped UDP datagrams through a link, to observe what the emulator does to each packet.
//   recv <port> <count> <idle-ms>        prints {"received","reordered","owdMs":{min,max,mean,p50},"rateBps"}
//   send <host> <port> <count> <size> <pps>  (pps 0 = as fast as possible)
// One-way delay is exact: both ends read CLOCK_MONOTONIC (process.hrtime), shared across network namespaces.
import dgram from "node:dgram"

const [role, ...a] = process.argv.slice(2)
if (role === "recv") {
  const [port, count, idleMs] = a.map(Number)
  const sock = dgram.createSocket("udp4")
  const owd = []
  let maxSeq = -1
  let reordered = 0
  let bytes = 0
  let first = 0n
  let last = 0n
  let timer
  const finish = () => {
    sock.close()
    owd.sort((x, y) => x - y)
    const seconds = Number(last - first) / 1e9
    console.log(
      JSON.stringify({
        received: owd.length,
        reordered,
        owdMs: {
          min: owd[0],
          max: owd.at(-1),
          mean: owd.reduce((s, x) => s + x, 0) / Math.max(1, owd.length),
          p50: owd[Math.floor(owd.length / 2)],
        },
        rateBps: seconds > 0 ? (bytes * 8) / seconds : 0,
      }),
    )
  }
  sock.on("message", (m) => {
    const now = process.hrtime.bigint()
    const seq = m.readUInt32BE(0)
    const sent = m.readBigUInt64BE(4)
    owd.push(Number(now - sent) / 1e6)
    if (seq < maxSeq) reordered++
    else maxSeq = seq
    if (first === 0n) first = now
    else bytes += m.length + 28 // IP + UDP headers: the emulator's rate counts whole packets
    last = now
    clearTimeout(timer)
    if (owd.length >= count) finish()
    else timer = setTimeout(finish, idleMs)
  })
  sock.bind(port, () => console.log("listening"))
} else if (role === "send") {
  const [host, port, count, size, pps] = [a[0], ...a.slice(1).map(Number)]
  const sock = dgram.createSocket("udp4")
  const buf = Buffer.alloc(Math.max(12, size))
  const start = process.hrtime.bigint()
  let i = 0
  const next = () => {
    if (i >= count) return sock.close()
    buf.writeUInt32BE(i, 0)
    buf.writeBigUInt64BE(process.hrtime.bigint(), 4)
    i++
    sock.send(buf, port, host, () => {
      if (pps <= 0) return setImmediate(next)
      const due = start + BigInt(Math.round((i * 1e9) / pps))
      const wait = Number(due - process.hrtime.bigint()) / 1e6
      wait > 0 ? setTimeout(next, wait) : setImmediate(next)
    })
  }
  next()
} else {
  console.error("usage: udp-probe.mjs recv <port> <count> <idle-ms> | send <host> <port> <count> <size> <pps>")
  process.exit(2)
}
