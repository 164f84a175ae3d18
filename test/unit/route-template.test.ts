import { describe, expect, it } from 'vitest';
import { routeTemplate } from '../../src/http/route-template.ts';
import { PAYMENT_KEY_ROUTE } from '../../src/dialects/fluxpay/schemas.ts';

describe('routeTemplate', () => {
  it('leaves a parameter’s regular expression out, as the OpenAPI document writes the path', () => {
    expect(routeTemplate(PAYMENT_KEY_ROUTE)).toBe('/api/v1/payments/:paymentKey');
    expect(routeTemplate('/a/:x(^\\d+$)/b/:y([a-z]{2}(-[a-z]{2})?)')).toBe('/a/:x/b/:y');
    expect(routeTemplate('/a/:x(\\(\\))/b')).toBe('/a/:x/b');
  });

  it('keeps every other pattern as it is', () => {
    for (const pattern of ['/v1/sim/intents/:id', '/api/v1/orders', '/', '/files/*', '/a/(literal)']) expect(routeTemplate(pattern)).toBe(pattern);
  });
});
