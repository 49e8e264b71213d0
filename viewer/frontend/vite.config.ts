// Builds the viewer bundles into /static/viewer/ with a manifest that the Django
// templates read (viewer/templatetags/viewer_assets.py). Everything is served by the
// portal itself: no CDN.
import { fileURLToPath, URL } from 'node:url';
import { defineConfig } from 'vitest/config';

const outDir = fileURLToPath(new URL('../../static/viewer/', import.meta.url));

export default defineConfig({
  base: '/static/viewer/',
  build: {
    outDir,
    emptyOutDir: true,
    manifest: true,
    target: 'es2022',
    chunkSizeWarningLimit: 6000,
    rollupOptions: {
      input: {
        study: fileURLToPath(new URL('./src/study.ts', import.meta.url)),
        studyPrefetch: fileURLToPath(new URL('./src/study-prefetch.ts', import.meta.url)),
        worklist: fileURLToPath(new URL('./src/worklist.ts', import.meta.url)),
        upload: fileURLToPath(new URL('./src/upload.ts', import.meta.url)),
        pacs: fileURLToPath(new URL('./src/pacs.ts', import.meta.url)),
        help: fileURLToPath(new URL('./src/help.ts', import.meta.url)),
        teaching: fileURLToPath(new URL('./src/teaching.ts', import.meta.url)),
      },
    },
  },
  // The DICOM decode worker and the tools' compute worker are module workers.
  worker: { format: 'es' },
  optimizeDeps: {
    exclude: ['@cornerstonejs/dicom-image-loader'],
    include: [
      'dicom-parser',
      '@cornerstonejs/metadata',
      '@cornerstonejs/codec-charls/decodewasmjs',
      '@cornerstonejs/codec-libjpeg-turbo-8bit/decodewasmjs',
      '@cornerstonejs/codec-openjpeg/decodewasmjs',
      '@cornerstonejs/codec-openjph/wasmjs',
      '@cornerstonejs/codec-libjxl/decodewasmjs',
    ],
  },
  test: {
    include: ['src/**/*.test.ts'],
    environment: 'node',
  },
});
