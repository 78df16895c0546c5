// The files scripts/build-web.mjs embeds in the browser bundle, by path: the .llm files under
// models/ ("std/nn.llm", "llama.llm", "examples/tiny-llama.llm") and the WGSL kernel templates
// under codegen-templates/wgsl/ ("linear.hbs").
declare module "llmc:embedded" {
  export const models: Record<string, string>;
  export const templates: Record<string, string>;
}
