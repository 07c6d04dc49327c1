// Compiles contracts/src/X402TestToken.sol with solc-js and prints the artifact JSON on stdout.
// Run through contracts/build.sh, which installs the pinned solc and passes its path.
//
// Usage: node contracts/compile.js <path to the solc npm package>
'use strict';

const fs = require('fs');
const path = require('path');

const solc = require(path.resolve(process.argv[2]));

const root = path.resolve(__dirname, '..');
// The key under which the source is compiled is part of the contract metadata; keep it stable.
const sourceKey = 'contracts/src/X402TestToken.sol';
const contractName = 'X402TestToken';

const settings = {
  // Pinned so the bytecode runs on any current dev chain and does not change with solc's default.
  evmVersion: 'cancun',
  optimizer: { enabled: true, runs: 200 },
  // No IPFS hash of the metadata in the bytecode: the bytecode then depends on the code and
  // the compiler only, not on comments. The artifact records the source hash separately.
  metadata: { bytecodeHash: 'none' },
  outputSelection: {
    [sourceKey]: {
      [contractName]: ['abi', 'evm.bytecode.object', 'evm.deployedBytecode.object', 'metadata'],
    },
  },
};

const input = {
  language: 'Solidity',
  sources: { [sourceKey]: { content: fs.readFileSync(path.join(root, sourceKey), 'utf8') } },
  settings,
};

const output = JSON.parse(solc.compile(JSON.stringify(input)));
const problems = (output.errors || []).filter((e) => e.severity !== 'info');
for (const problem of problems) {
  process.stderr.write(problem.formattedMessage || problem.message);
}
if (problems.some((e) => e.severity === 'error')) {
  process.exit(1);
}
if (problems.length > 0) {
  process.stderr.write('warnings are treated as errors\n');
  process.exit(1);
}

const compiled = output.contracts[sourceKey][contractName];
const metadata = JSON.parse(compiled.metadata);
const { outputSelection, ...recordedSettings } = settings;
const artifact = {
  contractName,
  source: sourceKey,
  // keccak256 of the source file, from solc's metadata; tests compare it with the file on disk
  // to catch a source edited without rebuilding.
  sourceKeccak256: metadata.sources[sourceKey].keccak256,
  compiler: { name: 'solc', version: solc.version(), settings: recordedSettings },
  rebuild: 'contracts/build.sh',
  abi: compiled.abi,
  bytecode: '0x' + compiled.evm.bytecode.object,
  deployedBytecode: '0x' + compiled.evm.deployedBytecode.object,
};
process.stdout.write(JSON.stringify(artifact, null, 2) + '\n');
