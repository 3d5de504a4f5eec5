export * from '../../domain/sweep-config.js';
export { ConfigError, formatIssue } from './errors.js';
export { loadConfigFile, loadConfigText } from './load.js';
export { inferDistribution, parseConfig, parseConfigFile, parseConfigText, parseStoppingKeys, toParsedConfig } from './parse.js';
