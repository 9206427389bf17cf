// `npm run build`: copies the charting library's distribution files (uPlot,
// pinned in package.json) from node_modules into assets/vendor/, which is
// served with the rest of assets/. Nothing else is generated: the dashboard's
// own files are served as they are in the repository.
import { copyFile, mkdir } from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const here = path.dirname(fileURLToPath(import.meta.url));
const from = path.join(here, 'node_modules/uplot');
const to = path.join(here, 'assets/vendor');

const files = [
  ['dist/uPlot.iife.min.js', 'uPlot.iife.min.js'],
  ['dist/uPlot.min.css', 'uPlot.min.css'],
  ['LICENSE', 'uPlot.LICENSE.txt'],
];

await mkdir(to, { recursive: true });
for (const [src, dst] of files) {
  try {
    await copyFile(path.join(from, src), path.join(to, dst));
  } catch (err) {
    console.error(`web build: cannot copy ${src} from node_modules/uplot (${err.code}); run npm ci in web/ first`);
    process.exit(1);
  }
}
console.log(`web build: ${files.length} files in assets/vendor/`);
