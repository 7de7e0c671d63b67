declare module "parse-prometheus-text-format" {
  const parse: (text: string) => Array<unknown>
  export default parse
}
