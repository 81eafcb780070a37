/// <reference types="vite/client" />

interface ImportMetaEnv {
  /** The API the profile page calls: the dev provider's sample API by default. */
  readonly VITE_API_URL?: string;
}

interface ImportMeta {
  readonly env: ImportMetaEnv;
}
