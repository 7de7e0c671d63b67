// Test PKI made with openssl: a CA, and leaf certificates for 127.0.0.1 usable as server and client
// (like the security package's node certificates: both EKUs, an IP SAN).
import { execFileSync } from "node:child_process"
import * as fs from "node:fs"
import * as path from "node:path"

const openssl = (args: ReadonlyArray<string>) => execFileSync("openssl", args, { stdio: ["ignore", "pipe", "pipe"] })

const ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"]

export interface Ca {
  readonly cert: string
  readonly key: string
  /** Issues `<dir>/<name>.crt` and `.key` for 127.0.0.1. */
  readonly issue: (dir: string, name: string) => { readonly cert: string; readonly key: string }
}

export const makeCa = (dir: string, name: string): Ca => {
  fs.mkdirSync(dir, { recursive: true })
  const cert = path.join(dir, `${name}.crt`)
  const key = path.join(dir, `${name}.key`)
  openssl(["req", "-x509", ...ec, "-subj", `/CN=${name}`, "-days", "2", "-keyout", key, "-out", cert])
  return {
    cert,
    key,
    issue: (to, leaf) => {
      fs.mkdirSync(to, { recursive: true })
      const out = { cert: path.join(to, `${leaf}.crt`), key: path.join(to, `${leaf}.key`) }
      const csr = path.join(to, `${leaf}.csr`)
      const ext = path.join(to, `${leaf}.ext`)
      fs.writeFileSync(
        ext,
        "subjectAltName=IP:127.0.0.1,DNS:localhost\nextendedKeyUsage=serverAuth,clientAuth\nkeyUsage=digitalSignature,keyAgreement\n",
      )
      openssl(["req", ...ec, "-subj", `/CN=${leaf}`, "-keyout", out.key, "-out", csr])
      openssl([
        "x509",
        "-req",
        "-in",
        csr,
        "-CA",
        cert,
        "-CAkey",
        key,
        "-CAcreateserial",
        "-days",
        "2",
        "-extfile",
        ext,
        "-out",
        out.cert,
      ])
      return out
    },
  }
}
