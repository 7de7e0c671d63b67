// `main.ts` runs the agent bundle from a V8 code cache. On Node 20 a script compiled from cached data
// loses its dynamic-import callback (ERR_VM_DYNAMIC_IMPORT_CALLBACK_MISSING), so `main.ts` passes an
// importer into the bundle's wrapper function as `__novacronImportEsm`; without it (tests running
// the sources, a plain `node cli.cjs`) the bundle's own `import()` is used.
declare const __novacronImportEsm: ((specifier: string) => Promise<unknown>) | undefined

/** Imports an ES module by specifier. */
export const importEsm = <M>(specifier: string): Promise<M> =>
  typeof __novacronImportEsm === "function"
    ? (__novacronImportEsm(specifier) as Promise<M>)
    : (import(specifier) as Promise<M>)
