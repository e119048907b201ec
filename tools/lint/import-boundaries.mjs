// ESLint rule `boundaries/no-cross-layer`: the layers of this repository as folders, and the
// imports between them that must not exist. Each relative module reference (import, export … from,
// import(), require(), import x = require()) is resolved against the importing file; when it lands
// in a folder a zone forbids for that file, the import is refused with the zone's reason.
// Bare specifiers (npm packages, node: builtins) are never layer crossings and are not checked.
import path from 'node:path';

/** `dir` (repo-relative, `/`-separated) holds `file` when it is the folder itself or below it. */
function within(dir, file) {
  return file === dir || file.startsWith(`${dir}/`) || file.startsWith(`${dir}.`);
}

const rule = {
  meta: {
    type: 'problem',
    docs: { description: 'forbid imports that cross the layers the folders draw' },
    schema: [
      {
        type: 'object',
        properties: {
          root: { type: 'string' },
          zones: {
            type: 'array',
            items: {
              type: 'object',
              properties: {
                from: { type: 'array', items: { type: 'string' } },
                except: { type: 'array', items: { type: 'string' } },
                target: { type: 'array', items: { type: 'string' } },
                reason: { type: 'string' },
              },
              required: ['from', 'target', 'reason'],
              additionalProperties: false,
            },
          },
        },
        required: ['root', 'zones'],
        additionalProperties: false,
      },
    ],
    messages: { crossing: "'{{spec}}' reaches {{target}}/ from {{file}}: {{reason}}" },
  },
  create(context) {
    const { root, zones } = context.options[0];
    const file = path.relative(root, context.filename).split(path.sep).join('/');
    const active = zones.filter((z) => z.from.some((d) => d === '.' || within(d, file)) && !(z.except ?? []).some((d) => within(d, file)));
    if (active.length === 0 || file.startsWith('..')) return {};

    function check(node, source) {
      if (!source || source.type !== 'Literal' || typeof source.value !== 'string') return;
      const spec = source.value;
      if (!spec.startsWith('./') && !spec.startsWith('../') && spec !== '.' && spec !== '..') return;
      const resolved = path
        .relative(root, path.resolve(path.dirname(context.filename), spec))
        .split(path.sep)
        .join('/');
      for (const z of active) {
        const target = z.target.find((t) => within(t, resolved));
        if (target) {
          context.report({ node, messageId: 'crossing', data: { spec, target, file, reason: z.reason } });
          return;
        }
      }
    }

    return {
      ImportDeclaration: (n) => check(n, n.source),
      ExportNamedDeclaration: (n) => check(n, n.source),
      ExportAllDeclaration: (n) => check(n, n.source),
      ImportExpression: (n) => check(n, n.source),
      TSImportEqualsDeclaration: (n) => {
        if (n.moduleReference?.type === 'TSExternalModuleReference') check(n, n.moduleReference.expression);
      },
      CallExpression: (n) => {
        if (n.callee.type === 'Identifier' && n.callee.name === 'require' && n.arguments.length === 1) check(n, n.arguments[0]);
      },
    };
  },
};

export default { meta: { name: 'import-boundaries' }, rules: { 'no-cross-layer': rule } };
