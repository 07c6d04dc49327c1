// Compiles the workspace's contracts with solc-js and writes one artifact JSON per contract
// (ABI + bytecode) into an output directory. Run through contracts/build.sh, which installs the
// pinned solc and passes its path.
//
// Usage: node contracts/compile.js <path to the solc npm package> <output directory>
//
// Each source is compiled on its own (with the same settings), so adding a contract never
// changes another one's artifact.
'use strict';

const fs = require('fs');
const path = require('path');

const solc = require(path.resolve(process.argv[2]));
const outDir = path.resolve(process.argv[3]);

const root = path.resolve(__dirname, '..');

// Source file (the key under which it is compiled is part of the contract metadata; keep it
// stable) => the contracts in it that get an artifact.
const SOURCES = {
  'contracts/src/X402TestToken.sol': ['X402TestToken'],
  'contracts/src/Permit2SignatureTransfer.sol': ['Permit2SignatureTransfer'],
  'contracts/src/X402ExactPermit2Proxy.sol': ['X402ExactPermit2Proxy'],
  'contracts/src/X402UptoPermit2Proxy.sol': ['X402UptoPermit2Proxy'],
  'contracts/src/X402TestWallet.sol': ['X402TestWallet', 'X402TestWalletFactory'],
  'contracts/src/X402Erc6492Validator.sol': ['X402Erc6492Validator'],
};

function compile(sourceKey, contractNames) {
  const settings = {
    // Pinned so the bytecode runs on any current dev chain and does not change with solc's default.
    evmVersion: 'cancun',
    optimizer: { enabled: true, runs: 200 },
    // No IPFS hash of the metadata in the bytecode: the bytecode then depends on the code and
    // the compiler only, not on comments. The artifact records the source hash separately.
    metadata: { bytecodeHash: 'none' },
    outputSelection: {
      [sourceKey]: Object.fromEntries(
        contractNames.map((name) => [
          name,
          ['abi', 'evm.bytecode.object', 'evm.deployedBytecode.object', 'metadata'],
        ]),
      ),
    },
  };
  // The token's artifact was first built with a selection of its one contract; the same shape
  // for every source keeps it byte for byte what it was.
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

  const { outputSelection, ...recordedSettings } = settings;
  for (const contractName of contractNames) {
    const compiled = output.contracts[sourceKey][contractName];
    const metadata = JSON.parse(compiled.metadata);
    const artifact = {
      contractName,
      source: sourceKey,
      // keccak256 of the source file, from solc's metadata; tests compare it with the file on
      // disk to catch a source edited without rebuilding.
      sourceKeccak256: metadata.sources[sourceKey].keccak256,
      compiler: { name: 'solc', version: solc.version(), settings: recordedSettings },
      rebuild: 'contracts/build.sh',
      abi: compiled.abi,
      bytecode: '0x' + compiled.evm.bytecode.object,
      deployedBytecode: '0x' + compiled.evm.deployedBytecode.object,
    };
    fs.writeFileSync(
      path.join(outDir, contractName + '.json'),
      JSON.stringify(artifact, null, 2) + '\n',
    );
  }
}

for (const [sourceKey, contractNames] of Object.entries(SOURCES)) {
  compile(sourceKey, contractNames);
}
