/**
 * Striped multi-stream (TCP/TLS, optional RDMA) transfer with resume, integrity and adaptive
 * stream count.
 *
 * @packageDocumentation
 */
export * as Amst from "./Amst.js"
export * as Frame from "./Frame.js"
export * as Rdma from "./Rdma.js"
export * as Receiver from "./Receiver.js"
export * as Sender from "./Sender.js"
export * as Source from "./Source.js"
export * as StreamController from "./StreamController.js"
export * as TransferError from "./TransferError.js"
export * as TransportSettings from "./TransportSettings.js"
