//! Running one operation of a case against the backend.

use durable_proto::*;
use proptest::test_runner::TestCaseError;
use tonic::{Code, Streaming};

use super::calls::{answer, call, next_item, on_hub, query, to_action};
use super::strategies::{ActionSpec, Op};
use super::{CALL, Client, IDLE, LIMIT};

pub(crate) async fn apply(
    client: &mut Client,
    hub: &str,
    stream: &mut Streaming<WorkItem>,
    op: &Op,
) -> Result<(), TestCaseError> {
    match op.clone() {
        Op::Start {
            id,
            name,
            input,
            at,
            policy,
        } => {
            let request = CreateInstanceRequest {
                instance_id: id,
                name,
                input,
                scheduled_start_timestamp: at,
                orchestration_id_reuse_policy: (!policy.is_empty()).then_some(
                    OrchestrationIdReusePolicy {
                        replaceable_status: policy,
                    },
                ),
                ..CreateInstanceRequest::default()
            };
            call("start", client.start_instance(on_hub(hub, request)), &[]).await?;
        }
        Op::Get(instance_id, payloads) => {
            let request = GetInstanceRequest {
                instance_id,
                get_inputs_and_outputs: payloads,
            };
            call("get", client.get_instance(on_hub(hub, request)), &[]).await?;
        }
        Op::Raise(instance_id, name, input) => {
            call(
                "raise",
                client.raise_event(on_hub(
                    hub,
                    RaiseEventRequest {
                        instance_id,
                        name,
                        input,
                    },
                )),
                &[],
            )
            .await?;
        }
        Op::Terminate(instance_id, output, recursive) => {
            let request = TerminateRequest {
                instance_id,
                output,
                recursive,
            };
            call(
                "terminate",
                client.terminate_instance(on_hub(hub, request)),
                &[],
            )
            .await?;
        }
        Op::Suspend(instance_id, reason, true) => {
            call(
                "suspend",
                client.suspend_instance(on_hub(
                    hub,
                    SuspendRequest {
                        instance_id,
                        reason,
                    },
                )),
                &[],
            )
            .await?;
        }
        Op::Suspend(instance_id, reason, false) => {
            call(
                "resume",
                client.resume_instance(on_hub(
                    hub,
                    ResumeRequest {
                        instance_id,
                        reason,
                    },
                )),
                &[],
            )
            .await?;
        }
        Op::Restart(instance_id, restart_with_new_instance_id) => {
            let request = RestartInstanceRequest {
                instance_id,
                restart_with_new_instance_id,
            };
            call(
                "restart",
                client.restart_instance(on_hub(hub, request)),
                &[],
            )
            .await?;
        }
        Op::Rewind(instance_id, reason) => {
            call(
                "rewind",
                client.rewind_instance(on_hub(
                    hub,
                    RewindInstanceRequest {
                        instance_id,
                        reason,
                    },
                )),
                &[],
            )
            .await?;
        }
        Op::PurgeId(id, recursive) => {
            let request = PurgeInstancesRequest {
                is_orchestration: !id.starts_with('@'),
                request: Some(purge_instances_request::Request::InstanceId(id)),
                recursive,
            };
            call(
                "purge by id",
                client.purge_instances(on_hub(hub, request)),
                &[],
            )
            .await?;
        }
        Op::PurgeBatch(instance_ids, recursive) => {
            let request = PurgeInstancesRequest {
                request: Some(purge_instances_request::Request::InstanceBatch(
                    InstanceBatch { instance_ids },
                )),
                recursive,
                is_orchestration: true,
            };
            call(
                "purge batch",
                client.purge_instances(on_hub(hub, request)),
                &[],
            )
            .await?;
        }
        Op::PurgeFilter(runtime_status, created_time_from, recursive) => {
            let filter = PurgeInstanceFilter {
                created_time_from,
                runtime_status,
                ..PurgeInstanceFilter::default()
            };
            let request = PurgeInstancesRequest {
                request: Some(purge_instances_request::Request::PurgeInstanceFilter(
                    filter,
                )),
                recursive,
                is_orchestration: true,
            };
            call(
                "purge by filter",
                client.purge_instances(on_hub(hub, request)),
                &[],
            )
            .await?;
        }
        Op::Query(prefix, page, continuation, statuses) => {
            let request = QueryInstancesRequest {
                query: Some(query(prefix, page, continuation, statuses)),
            };
            call("query", client.query_instances(on_hub(hub, request)), &[]).await?;
        }
        Op::ListIds(page_size, last_instance_key, runtime_status) => {
            let request = ListInstanceIdsRequest {
                runtime_status,
                page_size,
                last_instance_key,
                ..ListInstanceIdsRequest::default()
            };
            call(
                "list ids",
                client.list_instance_ids(on_hub(hub, request)),
                &[],
            )
            .await?;
        }
        Op::History(instance_id) => {
            let request = StreamInstanceHistoryRequest {
                instance_id,
                ..StreamInstanceHistoryRequest::default()
            };
            if let Some(mut chunks) = call(
                "history",
                client.stream_instance_history(on_hub(hub, request)),
                &[],
            )
            .await?
            {
                loop {
                    match tokio::time::timeout(CALL, chunks.message()).await {
                        Err(_) => return Err(TestCaseError::fail("a history stream hung")),
                        Ok(Ok(Some(_))) => {}
                        Ok(Ok(None)) => break,
                        Ok(Err(status)) => {
                            return Err(TestCaseError::fail(format!("history chunk: {status:?}")));
                        }
                    }
                }
            }
        }
        Op::Wait(instance_id, completion, timeout) => {
            let mut request = on_hub(
                hub,
                GetInstanceRequest {
                    instance_id,
                    get_inputs_and_outputs: true,
                },
            );
            request
                .metadata_mut()
                .insert("grpc-timeout", timeout.parse().unwrap());
            let late = [Code::DeadlineExceeded, Code::Cancelled];
            if completion {
                call(
                    "wait for completion",
                    client.wait_for_instance_completion(request),
                    &late,
                )
                .await?;
            } else {
                call(
                    "wait for start",
                    client.wait_for_instance_start(request),
                    &late,
                )
                .await?;
            }
        }
        Op::Signal(instance_id, name, input, scheduled_time) => {
            let request = SignalEntityRequest {
                instance_id,
                name,
                input,
                request_id: String::new(),
                scheduled_time,
                ..SignalEntityRequest::default()
            };
            call("signal", client.signal_entity(on_hub(hub, request)), &[]).await?;
        }
        Op::GetEntity(instance_id, include_state) => {
            call(
                "get entity",
                client.get_entity(on_hub(
                    hub,
                    GetEntityRequest {
                        instance_id,
                        include_state,
                    },
                )),
                &[],
            )
            .await?;
        }
        Op::QueryEntities(prefix, page_size, continuation_token, include_transient) => {
            let request = QueryEntitiesRequest {
                query: Some(EntityQuery {
                    instance_id_starts_with: prefix,
                    include_state: true,
                    include_transient,
                    page_size,
                    continuation_token,
                    ..EntityQuery::default()
                }),
            };
            call(
                "query entities",
                client.query_entities(on_hub(hub, request)),
                &[],
            )
            .await?;
        }
        Op::CleanEntities => {
            let request = CleanEntityStorageRequest {
                continuation_token: None,
                remove_empty_entities: true,
                release_orphaned_locks: true,
            };
            call(
                "clean entities",
                client.clean_entity_storage(on_hub(hub, request)),
                &[],
            )
            .await?;
        }
        Op::SkipGraceful(instance_ids, reason) => {
            let request = SkipGracefulOrchestrationTerminationsRequest {
                instance_batch: Some(InstanceBatch { instance_ids }),
                reason,
            };
            call(
                "skip graceful",
                client.skip_graceful_orchestration_terminations(on_hub(hub, request)),
                &[],
            )
            .await?;
        }
        Op::Housekeeping => {
            call("hello", client.hello(on_hub(hub, ())), &[]).await?;
            call(
                "tombstones",
                client
                    .get_tombstoned_payloads(on_hub(hub, GetTombstonedPayloadsRequest::default())),
                &[],
            )
            .await?;
            call(
                "ack purged",
                client.ack_purged_payloads(on_hub(hub, AckPurgedPayloadsRequest::default())),
                &[],
            )
            .await?;
        }
        Op::CreateHub(recreate_if_exists) => {
            call(
                "create hub",
                client.create_task_hub(on_hub(hub, CreateTaskHubRequest { recreate_if_exists })),
                &[],
            )
            .await?;
        }
        Op::DeleteHub => {
            call(
                "delete hub",
                client.delete_task_hub(on_hub(hub, DeleteTaskHubRequest {})),
                &[],
            )
            .await?;
        }
        Op::OtherStream(max, names, capabilities) => {
            let request = GetWorkItemsRequest {
                max_concurrent_orchestration_work_items: max,
                max_concurrent_activity_work_items: max,
                max_concurrent_entity_work_items: max,
                capabilities,
                work_item_filters: (!names.is_empty()).then(|| WorkItemFilters {
                    orchestrations: names
                        .iter()
                        .map(|name| OrchestrationFilter {
                            name: name.clone(),
                            versions: vec![],
                        })
                        .collect(),
                    activities: names
                        .iter()
                        .map(|name| ActivityFilter {
                            name: name.clone(),
                            versions: vec![],
                        })
                        .collect(),
                    entities: names
                        .iter()
                        .map(|name| EntityFilter { name: name.clone() })
                        .collect(),
                }),
            };
            if let Some(mut other) = call(
                "open a stream",
                client.get_work_items(on_hub(hub, request)),
                &[],
            )
            .await?
            {
                // Whatever it takes is given back when it closes here.
                next_item(&mut other, IDLE).await?;
            }
        }
        Op::Forge(kind, completion_token, is_partial) => {
            let token = completion_token.clone();
            match kind {
                0 => {
                    let response = ActivityResponse {
                        completion_token,
                        ..ActivityResponse::default()
                    };
                    call(
                        "forged activity",
                        client.complete_activity_task(on_hub(hub, response)),
                        &[],
                    )
                    .await?;
                }
                1 => {
                    let big = ActionSpec::Schedule("x".into(), Some("p".repeat(LIMIT)));
                    #[allow(deprecated)]
                    let response = OrchestratorResponse {
                        completion_token,
                        is_partial,
                        actions: vec![to_action(0, &big)],
                        ..OrchestratorResponse::default()
                    };
                    call(
                        "forged turn",
                        client.complete_orchestrator_task(on_hub(hub, response)),
                        &[],
                    )
                    .await?;
                }
                2 => {
                    let response = EntityBatchResult {
                        completion_token,
                        ..EntityBatchResult::default()
                    };
                    call(
                        "forged batch",
                        client.complete_entity_task(on_hub(hub, response)),
                        &[],
                    )
                    .await?;
                }
                3 => {
                    let request = AbandonActivityTaskRequest {
                        completion_token: token,
                    };
                    call(
                        "forged abandon",
                        client.abandon_task_activity_work_item(on_hub(hub, request)),
                        &[],
                    )
                    .await?;
                }
                4 => {
                    let request = AbandonOrchestrationTaskRequest {
                        completion_token: token,
                    };
                    call(
                        "forged abandon",
                        client.abandon_task_orchestrator_work_item(on_hub(hub, request)),
                        &[],
                    )
                    .await?;
                }
                _ => {
                    let request = AbandonEntityTaskRequest {
                        completion_token: token,
                    };
                    call(
                        "forged abandon",
                        client.abandon_task_entity_work_item(on_hub(hub, request)),
                        &[],
                    )
                    .await?;
                }
            }
        }
        Op::Work(replies) => {
            for reply in &replies {
                let Some(item) = next_item(stream, IDLE).await? else {
                    break;
                };
                answer(client, hub, item, reply).await?;
            }
        }
    }
    Ok(())
}
