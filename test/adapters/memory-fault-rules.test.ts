import { MemoryFaultRuleStore } from '../../src/adapters/memory/fault-rules.ts';
import { faultRuleStoreContract } from './contracts/fault-rules.contract.ts';

// Issue 15's port; this joins test/adapters/memory.test.ts when the rules routes are wired.
faultRuleStoreContract('memory', ({ maxRules }) => new MemoryFaultRuleStore({ maxRules }));
