// cdk8s-cli loads validation plugins with a plain require(); tsx's CommonJS hook lets this one
// load the TypeScript policy engine itself instead of a compiled copy that could drift from it.
require('tsx/cjs/api').register();
module.exports = require('../validation.ts');
