// Builds one ES module (canvas.js) and one stylesheet (canvas.css) into ../build/, which
// Streamlit's Components v2 API loads inline (app/components/canvas/__init__.py).
import { defineConfig } from "vite";
import react from "@vitejs/plugin-react";

export default defineConfig({
  plugins: [react()],
  define: { "process.env.NODE_ENV": JSON.stringify("production") },
  build: {
    outDir: "../build",
    emptyOutDir: true,
    cssCodeSplit: false,
    sourcemap: false,
    minify: true,
    lib: {
      entry: "src/index.jsx",
      formats: ["es"],
      fileName: () => "canvas.js",
      cssFileName: "canvas",
    },
    rolldownOptions: { output: { inlineDynamicImports: true, minify: true } },
  },
});
