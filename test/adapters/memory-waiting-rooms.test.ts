import { MemoryRateLimitStore } from '../../src/adapters/memory/rate-limits.ts';
import { MemoryWaitingRoomStore } from '../../src/adapters/memory/waiting-rooms.ts';
import { rateLimitStoreContract } from './contracts/rate-limits.contract.ts';
import { waitingRoomStoreContract } from './contracts/waiting-rooms.contract.ts';

// Issue 12's ports; these join test/adapters/memory.test.ts when their dialect routes are wired.
waitingRoomStoreContract('memory', ({ maxTickets, ttlMs }) => new MemoryWaitingRoomStore({ maxTickets, ttlMs }));
rateLimitStoreContract('memory', ({ maxKeys }) => new MemoryRateLimitStore({ maxKeys }));
