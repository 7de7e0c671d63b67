/** Whether something accepts TCP connections at the URL's host and port (1 s timeout). */
export declare const reachable: (url: string) => Promise<boolean>
/** Whether the shared service answers. In CI (`CI` set) a missing service is an error, never a skip. */
export declare const service: (name: string, url: string) => Promise<boolean>
