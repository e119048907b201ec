// phonemizer ships its types only under package.json "exports", which moduleResolution "node" does not read.
declare module 'phonemizer' {
  export function phonemize(text: string, language?: string): Promise<string[]>;
  export function list_voices(
    language?: string,
  ): Promise<{ name: string; identifier: string; languages: { name: string; priority: number }[] }[]>;
}
