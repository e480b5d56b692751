"""One engine per kind of hardware, each with a `Config` (its YAML schema) and `simulate`:
a module where the kind fits in one (`systolic`, `sparse_tensor_core`), a package otherwise
(`zero_skip/`, `gpu/`, `neuromorphic/`). `counts` holds what every engine returns;
`shared_gemm_operand` what the GEMM-based engines share. Registered in `accelsim.kinds`."""
