// @hey-api/openapi-ts settings for scripts/sdk: the client is a build output in generated/.
import { defineConfig } from '@hey-api/openapi-ts';

export default defineConfig({
  input: '../../openapi/openapi.json',
  output: 'generated',
  plugins: [
    '@hey-api/client-fetch',
    // Enums as objects too (ConditionView.Good), not only as string unions.
    { name: '@hey-api/typescript', enums: 'javascript' },
    '@hey-api/sdk',
  ],
});
