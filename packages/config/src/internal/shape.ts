// The key structure of the file form of the schema, used to find unknown keys and to know which
// overrides are strings (taken verbatim) and which are read as YAML.

import { SchemaAST } from "effect"
import { closest, distance } from "fastest-levenshtein"

export type Shape =
  | { readonly kind: "struct"; readonly fields: ReadonlyMap<string, Shape> }
  | { readonly kind: "array"; readonly item: Shape }
  | { readonly kind: "leaf"; readonly string: boolean }

const isStringLike = (ast: SchemaAST.AST): boolean => {
  switch (ast._tag) {
    case "StringKeyword":
    case "TemplateLiteral":
      return true
    case "Literal":
      return typeof ast.literal === "string"
    case "Union":
      return ast.types.every(isStringLike)
    default:
      return false
  }
}

const build = (ast: SchemaAST.AST): Shape => {
  switch (ast._tag) {
    case "TypeLiteral":
      return { kind: "struct", fields: new Map(ast.propertySignatures.map((p) => [String(p.name), build(p.type)])) }
    case "TupleType": {
      const rest = ast.rest[0]
      return rest ? { kind: "array", item: build(rest.type) } : { kind: "leaf", string: false }
    }
    case "Union": {
      const members = ast.types.filter((t) => t._tag !== "UndefinedKeyword")
      if (members.length === 1) return build(members[0]!)
      return { kind: "leaf", string: isStringLike(ast) }
    }
    default:
      return { kind: "leaf", string: isStringLike(ast) }
  }
}

// The encoded side has no refinements or transformations left, and the settings schema has no
// recursion (Suspend): only structs, arrays, unions and leaves need a case.
export const shapeOf = (ast: SchemaAST.AST): Shape => build(SchemaAST.encodedAST(ast))

/** Every leaf path of a shape (array items not expanded), for "did you mean" across sections. */
const leaves = (shape: Shape, path: string, out: Array<string>): Array<string> => {
  if (shape.kind === "struct") for (const [k, s] of shape.fields) leaves(s, path === "" ? k : `${path}.${k}`, out)
  else out.push(path)
  return out
}

/** A suggestion for an unknown `key` under `parent`: a close sibling, else the same key elsewhere. */
export const suggest = (root: Shape, parent: Shape, key: string): string | undefined => {
  if (parent.kind === "struct" && parent.fields.size > 0) {
    const names = [...parent.fields.keys()]
    const best = closest(key, names)
    if (distance(key, best) <= Math.max(2, Math.floor(key.length / 3))) return best
  }
  const elsewhere = leaves(root, "", []).filter((p) => p.split(".").at(-1) === key)
  return elsewhere.length === 1 ? elsewhere[0] : undefined
}

export const at = (root: Shape, segments: ReadonlyArray<string>): Shape | undefined => {
  let s: Shape | undefined = root
  for (const seg of segments) {
    if (s?.kind !== "struct") return undefined
    s = s.fields.get(seg)
  }
  return s
}

/** `root` with one more leaf at `path` (its parent sections must exist): for keys read outside the schema. */
export const withLeaf = (root: Shape, path: ReadonlyArray<string>, leaf: Shape): Shape => {
  const [head, ...rest] = path
  if (root.kind !== "struct" || head === undefined) return root
  const fields = new Map(root.fields)
  const child = fields.get(head)
  if (rest.length === 0) fields.set(head, leaf)
  else if (child !== undefined) fields.set(head, withLeaf(child, rest, leaf))
  return { kind: "struct", fields }
}
