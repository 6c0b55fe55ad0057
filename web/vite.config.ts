import { defineConfig } from "vite";

// The build lands in ../static, which the Function App serves at "/" (index.html) and "/assets/..."
// (hashed names, cached for a year). The dev server proxies the API to a running devhost.
export default defineConfig({
  base: "/",
  build: {
    outDir: "../static",
    emptyOutDir: true,
    target: "es2022",
    sourcemap: false,
    reportCompressedSize: false,
  },
  server: {
    proxy: {
      "/api": process.env.DEVHOST_URL ?? "http://127.0.0.1:7071",
      "/_devhost": process.env.DEVHOST_URL ?? "http://127.0.0.1:7071",
    },
  },
});
