"""Coconut <-> Microsoft 365 calendar sync: the product code.

- The pure core decides: `desired_state` (highest revision wins), `export.rendering` and
  `export.planning` (which event, which Graph writes), `imports.busy_time` (which Outlook events
  become busy blocks).
- The worker (`worker`, under `lease`) applies those decisions through the ports (`ports`), in
  the error vocabulary of `errors`, recording per staff member a `staff_record`.
- Adapters sit at the edge: `storage` (Azure Table/Queue Storage), `graph` (msgraph-sdk),
  `coconut.api` (the Coconut API), and `memory` (all of them in memory, for tests).
- Entry points: `webhooks` and `notifications` (HTTP receivers), `cycle` (the timer), `ops`
  (administrators), all wired once per process in `services`.
"""
