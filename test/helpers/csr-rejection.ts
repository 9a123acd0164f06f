// The CsrRejectedError a call throws (the CA's tests check its reason and message); anything else fails.
import { CsrRejectedError } from "../../controller/errors.ts";

export function rejection(fn: () => unknown): CsrRejectedError {
  try {
    fn();
  } catch (err) {
    if (err instanceof CsrRejectedError) return err;
    throw err;
  }
  throw new Error("expected a rejection");
}
