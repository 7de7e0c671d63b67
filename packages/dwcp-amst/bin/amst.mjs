#!/usr/bin/env node
// The `amst` CLI (send / receive); the implementation is src/cli.ts, built to dist/cli.js.
import { main } from "../dist/cli.js"

process.exit(await main(process.argv.slice(2)))
