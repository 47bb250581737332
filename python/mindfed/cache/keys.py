"""Every Redis key name mindfed uses, in one place.

The layout follows MindSpore Federated's (`ms_fl:{fl_name}:...`, spec §5.1) so an operator who knows one can read the
other, but the cluster only ever talks to mindfed servers, so the value formats are our own (JSON, not protobuf).
Per-iteration keys carry the iteration number and get a TTL, so a crashed node never leaves the cluster stuck.

The braces are literal: every key of a job is `ms_fl:{<fl_name>}:...`, a Redis Cluster hash tag, so all of them hash
to one slot and every Lua script, MULTI and multi-key command of the job runs on one node (MindSpore writes the name
without braces; a Redis shared with MindSpore servers of the same fl_name is not a use case). Nothing outside this
module builds a key.
"""

from __future__ import annotations

from dataclasses import dataclass

# Hash fields of the instance status hash (spec §4.5, §4.7).
FIELD_ITERATION = "iterationNum"
FIELD_RUNNING_STATE = "runningState"
FIELD_LAST_SUCCESS = "lastIterationSuccess"
FIELD_LAST_RESULT = "lastIterationResult"

# Counter names inside the per-iteration count hash (spec §4.1).
ROUND_START_FL_JOB = "startFLJob"
ROUND_UPDATE_MODEL = "updateModel"
ROUND_AGGREGATED = "count_for_aggregation"

# The rounds whose responses the summary hash counts (metrics_file's clientVisitedInfo, spec §9).
SUMMARY_ROUNDS = ("startFLJob", "updateModel", "getModel", "getResult")


def visits_total(round_name: str) -> str:
    """Field of the per-iteration summary hash (`IterationKeys.stats`): every response `round_name` sent."""
    return f"{round_name}:total"


def visits_accept(round_name: str) -> str:
    """Field of the per-iteration summary hash: the responses of `round_name` that were successes."""
    return f"{round_name}:accept"


@dataclass(frozen=True, slots=True)
class JobKeys:
    """Keys that outlive instances: the current instance name and the declared model layout."""

    fl_name: str

    @property
    def prefix(self) -> str:
        """`ms_fl:{<fl_name>}:`: the job's hash tag (module docstring)."""
        return f"ms_fl:{{{self.fl_name}}}:"

    @property
    def instance_name(self) -> str:
        return self.prefix + "InstanceName:String"

    @property
    def model_info(self) -> str:
        return self.prefix + "ModelInfo:String"

    @property
    def pw_prime(self) -> str:
        """The Shamir prime of PW_ENCRYPT: one per cluster (every instance of the job), set once by the first server
        (SETNX) and read back by every other (MindSpore's servers each HSET their own, so devices could be handed
        different primes)."""
        return self.prefix + "cipher:prime:Bytes"

    @property
    def iteration_history(self) -> str:
        """List of the metrics lines of the job's latest finished iterations (every instance), oldest first, kept to
        a bounded length (cache/iteration_history.py); what the scheduler's dashboard plots. Ours: MindSpore keeps
        them only in each server's metrics_file."""
        return self.prefix + "summary:history:List"

    def replay_guard(self, signature_hash: str) -> str:
        """pki_verify: a request signature already accepted (hex SHA-256 of it), kept until its timestamp leaves the
        replay window (cache/pki.py). Job-wide: a signature is good for one request, in any round of any iteration."""
        return f"{self.prefix}pki:seen:{signature_hash}"

    def instance(self, instance_name: str) -> InstanceKeys:
        return InstanceKeys(self.prefix + instance_name + ":")


@dataclass(frozen=True, slots=True)
class InstanceKeys:
    """Keys of one instance (`P` in spec §5.1): status, hyper-parameters, membership."""

    prefix: str

    @property
    def status(self) -> str:
        return self.prefix + "status:Hash"

    @property
    def hyper_params(self) -> str:
        return self.prefix + "hyperParams:String"

    @property
    def servers(self) -> str:
        return self.prefix + "server:Hash"

    def server_heartbeat(self, node_id: str) -> str:
        return f"{self.prefix}server:heartbeat:{node_id}:String"

    @property
    def workers(self) -> str:
        """Hash worker id → worker id: the hybrid workers of the instance (MindSpore's `worker:Hash`, spec §1.5)."""
        return self.prefix + "worker:Hash"

    def worker_heartbeat(self, worker_id: str) -> str:
        return f"{self.prefix}worker:heartbeat:{worker_id}:String"

    @property
    def registration_lock(self) -> str:
        return self.prefix + "server:regLock:String"

    @property
    def model(self) -> str:
        """Hash {iteration, blob}: the newest global model, so a joining or restarted server can adopt it."""
        return self.prefix + "model:Hash"

    @property
    def unsupervised_items(self) -> str:
        # A list despite the name, as in MindSpore: the latest `cluster_client_num` eval vectors.
        return self.prefix + "client:UnsupervisedEval:Hash"

    # -- SignDS (spec §7.4; MindSpore's names, typo "clinet" included) --------------------------------------------
    @property
    def signds_r_est(self) -> str:
        """String: r_est as MindSpore writes it (`std::to_string(float)`, six decimals)."""
        return self.prefix + "clinet:SignDSrEst:Hash"

    @property
    def signds_is_reached(self) -> str:
        return self.prefix + "clinet:SignDSIsReached:Hash"

    @property
    def signds_reached_count(self) -> str:
        return self.prefix + "clinet:SignDSReachedCount:Hash"

    @property
    def signds_adapted_through(self) -> str:
        """String: the last iteration whose b̂ list has been summarised (ours: makes the adaptation once-only)."""
        return self.prefix + "client:SignDSAdaptedThrough:String"

    def iteration(self, iteration: int) -> IterationKeys:
        return IterationKeys(f"{self.prefix}{iteration}:")


@dataclass(frozen=True, slots=True)
class IterationKeys:
    """Keys of one iteration (`PI` in spec §5.1); all get the iteration TTL."""

    prefix: str

    @property
    def counts(self) -> str:
        """Hash: round name → cluster-wide count."""
        return self.prefix + "count:Hash"

    def per_server_counts(self, round_name: str) -> str:
        """Hash: node_id → count, so the loss of a server holding updates can be detected (spec §4.2)."""
        return f"{self.prefix}count:{round_name}:Hash"

    @property
    def timers(self) -> str:
        """Hash: round name → ms timestamp of the round's first count (cluster-wide timers, unlike MindSpore's)."""
        return self.prefix + "timer:Hash"

    @property
    def device_metas(self) -> str:
        """Hash: fl_id → JSON {data_size, now_time, eval_data_size}."""
        return self.prefix + "client:DeviceMetas:Hash"

    @property
    def update_model_clients(self) -> str:
        """Set of fl_ids whose updateModel was accepted."""
        return self.prefix + "client:cipher:updateModel:flSet"

    @property
    def stats(self) -> str:
        """Hash of summary accumulators: per-round totals/accepts, loss and accuracy sums (spec §9)."""
        return self.prefix + "summary:stats:Hash"

    @property
    def flushed(self) -> str:
        """Hash node_id → 1 for servers whose counters of this iteration are all in `stats`."""
        return self.prefix + "summary:flushed:Hash"

    @property
    def summary_lock(self) -> str:
        return self.prefix + ":summaryLock:String"

    def wal(self, node_id: str) -> str:
        """Hash fl_id → raw updateModel body accepted by `node_id` and not yet in its checkpoint (write-ahead log)."""
        return f"{self.prefix}durable:wal:{node_id}:Hash"

    def partial(self, node_id: str) -> str:
        """`node_id`'s checkpointed partial sums (binary blob, see server/partials.py)."""
        return f"{self.prefix}durable:partial:{node_id}:Bytes"

    def checkpoint_tags(self, node_id: str) -> str:
        """Set of fl_ids whose updates `node_id`'s checkpoint contains."""
        return f"{self.prefix}durable:ckptTags:{node_id}:Set"

    def reserved(self, node_id: str) -> str:
        """Set of fl_ids whose update `node_id` reserved (lost ones are released when the node dies)."""
        return f"{self.prefix}durable:reserved:{node_id}:Set"

    @property
    def repaired(self) -> str:
        """Hash node_id → number of its updates kept, for dead servers whose updates were taken over."""
        return self.prefix + "durable:repaired:Hash"

    @property
    def aggregator(self) -> str:
        """node_id of the server combining this iteration's partial sums (one per iteration)."""
        return self.prefix + "aggregator:String"

    # ---- PW_ENCRYPT (spec §7.1); every piece of protocol state, so any server serves any step ----
    @property
    def pw_keys(self) -> str:
        """Hash fl_id → c_pk ‖ s_pk ‖ ind_iv ‖ pw_iv ‖ pw_salt (32 + 32 + 16 + 16 + 32 bytes), from exchangeKeys."""
        return self.prefix + "cipher:keys:Hash"

    def pw_clients(self, round_name: str) -> str:
        """Set of the fl_ids that passed `round_name` (getKeys, shareSecrets, getSecrets, getClientList)."""
        return f"{self.prefix}cipher:{round_name}:flSet"

    def pw_inbox(self, fl_id: str) -> str:
        """Hash source fl_id → encrypted share addressed to `fl_id` (what its getSecrets returns)."""
        return f"{self.prefix}cipher:inbox:{fl_id}:Hash"

    @property
    def pw_reconstruct(self) -> str:
        """Hash reconstructing fl_id → the shares it revealed (secagg/wire.py encoding)."""
        return self.prefix + "cipher:reconstruct:Hash"

    # ---- pki_verify (spec §10.2, §7.2) ----
    @property
    def key_attestations(self) -> str:
        """Hash fl_id → key-attestation PEM stored by startFLJob (MindSpore's client:KeyAttestation:Hash)."""
        return self.prefix + "client:KeyAttestation:Hash"

    @property
    def list_signatures(self) -> str:
        """Hash fl_id → the device's signature of its client list, from pushListSign (client:Signatures:Hash)."""
        return self.prefix + "client:Signatures:Hash"

    @property
    def key_signatures(self) -> str:
        """Hash fl_id → JSON {timestamp, iteration, signature (hex), certificate_chain} of its exchangeKeys, which
        getKeys hands to peers under pki_verify."""
        return self.prefix + "cipher:keySignatures:Hash"

    # ---- HYBRID_TRAINING (spec §11.1): the worker's part of the iteration, readable by every server ----
    @property
    def hybrid_aggregate(self) -> str:
        """The devices' aggregate (server/partials.py model encoding), written once by the aggregator: what
        pullWeight serves until a worker pushes."""
        return self.prefix + "hybrid:aggregate:Bytes"

    @property
    def hybrid_pushed(self) -> str:
        """The first worker's pushWeight (SET NX), the same encoding: the iteration's model once pushMetrics came."""
        return self.prefix + "hybrid:pushWeight:Bytes"

    @property
    def hybrid_metrics(self) -> str:
        """JSON {loss, accuracy} of the first pushMetrics (SET NX): what metrics.json reports for the iteration."""
        return self.prefix + "hybrid:pushMetrics:String"

    @property
    def signds_b_hat(self) -> str:
        """List of the iteration's b̂ ("0"/"1"), one per accepted SignDS upload (MindSpore: one list per instance)."""
        return self.prefix + "clinet:SignDSbHat:List"

    @property
    def signds_params(self) -> str:
        """Hash {rEst, isReached}: the SignDS state every startFLJob and updateModel of the iteration uses."""
        return self.prefix + "client:SignDSParams:Hash"

    def all_keys(self) -> list[str]:
        """The fixed-name keys of this iteration, for TTL refresh and release."""
        return [
            self.pw_keys,
            *(self.pw_clients(r) for r in ("getKeys", "shareSecrets", "getSecrets", "getClientList")),
            self.pw_reconstruct,
            self.key_attestations,
            self.list_signatures,
            self.key_signatures,
            self.pw_clients("getListSign"),
            self.counts,
            self.per_server_counts(ROUND_UPDATE_MODEL),
            self.per_server_counts(ROUND_AGGREGATED),
            self.timers,
            self.device_metas,
            self.update_model_clients,
            self.stats,
            self.flushed,
            self.repaired,
            self.aggregator,
            self.hybrid_aggregate,
            self.hybrid_pushed,
            self.hybrid_metrics,
        ]

    def node_keys(self, node_id: str) -> list[str]:
        """The per-server durability keys of `node_id` in this iteration."""
        return [self.wal(node_id), self.partial(node_id), self.checkpoint_tags(node_id), self.reserved(node_id)]
