/** Test helpers for the console (never imported by the app itself). */
export { createFakeApi, flush, type FakeApi } from './fakeApi';
export { entry, file, job, node, status } from './fixtures';
