import type { CallOptions, SendRequest } from "../request";
import type { FilterTest, FilterTestResult } from "../types";

/** `sb.filters`: try a subscriber filter without publishing anything. Admin token. */
export function filtersResource(request: SendRequest) {
  return {
    /**
     * Whether `message` would match `filter`; `invalid_filter` (with the position in `detail`)
     * when the filter does not compile.
     *
     * @example
     * const { matches } = await sb.filters.test({
     *   filter: 'body.category == "food"',
     *   message: { body: { category: "food" } },
     * });
     */
    test(input: FilterTest, options?: CallOptions): Promise<FilterTestResult> {
      return request({
        method: "POST",
        path: "/v1/filters/test",
        json: input,
        idempotent: true,
        options,
      });
    },
  };
}

/** The methods of `sb.filters`. */
export type Filters = ReturnType<typeof filtersResource>;
